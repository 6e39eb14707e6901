print("backpack: skeleton")
